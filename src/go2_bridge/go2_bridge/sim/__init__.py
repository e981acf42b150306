"""A MuJoCo Go2 for tests and simulation: a self-written model and a backend speaking unitree_go topics."""
