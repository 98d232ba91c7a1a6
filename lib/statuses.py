"""An evolution's statuses (DESIGN §4): a vocabulary the store, every floor and the scripts' options share,
kept on the ground floor so that a script's --help names them without loading the store."""

ACTIVE = ("pending", "running", "stopping")
#: `unchanged`: every cycle ran and none changed the code; final, but no success (DESIGN §5).
FINAL = ("succeeded", "unchanged", "failed", "stopped", "killed")
#: The final statuses that are neither a success nor `unchanged`: what the failure commands diagnose.
ENDED_BADLY = ("failed", "stopped", "killed")
