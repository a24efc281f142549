"""Linearizability checks of concurrent histories: a recorder of what concurrent buyers asked
and were answered (under faults), a sequential model of the service, and the Wing-Gong-Lowe
search that explains every answer by one order of the operations, or prints the shortest
window it cannot explain."""
