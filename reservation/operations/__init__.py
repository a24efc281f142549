"""What keeps the stores true while nobody asks: the sweeper, the recovery of lost counters,
reconcile, and the loop that runs them."""
