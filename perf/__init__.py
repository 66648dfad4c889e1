"""dropout-bench's speed lab, beside the experiment: how fast the engine trains and why.

    dropout-bench speed --peers             # the CLI over perf.speed.measure_speed

speed (the engines against the seed's loop, in one run), roofline (this machine's limit
for a step: its products and Adam alone; a step's profile), peers (what a user would
write instead), steppers (training steps in isolation), memory (a group's peak against
its buffers), tune (the best group size per machine and network shape, measured once and
cached) and choice (a run's group sizes, chosen by its driver). It stands on bench and
nothing in bench imports it. See perf/README.md.
"""
