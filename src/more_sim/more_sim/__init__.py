"""The six-task MoRE simulator (Gymnasium API, MuJoCo rendering), experts, data and evaluation."""
