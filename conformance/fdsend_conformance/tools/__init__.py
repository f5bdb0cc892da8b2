"""Stand-alone tools on top of the suite: the command line, bench, soak, compare, vm and kernels."""
