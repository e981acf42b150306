"""The simulated Unitree Go2 (MuJoCo) on unitree_go LowCmd/LowState: model, physics and node. Simulation only."""
