"""The CLI's commands, one module each: parse, translate, call a library function.

``COMMANDS`` lists each module's ``add_*`` function, in the order ``--help`` shows them.
"""
from .report import add_report_command
from .search import add_search_command
from .speed import add_speed_command
from .sweep import add_sweep_commands
from .trial import add_trial_command
from .validate import add_validate_command

COMMANDS = [add_sweep_commands, add_search_command, add_report_command, add_trial_command, add_speed_command,
            add_validate_command]
