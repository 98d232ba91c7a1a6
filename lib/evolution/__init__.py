"""The evolution: its lifecycle (lifecycle), the runner's cycle of phases (runner, worker), the agents' contract
(contract), judging and publishing a change (judge, patching, publish), stuck runners (stuck) and executors."""
