"""walk-these-ways low-level controller: pure core (observation, clock, mapping, watchdogs) and node."""
