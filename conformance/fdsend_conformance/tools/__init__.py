"""Stand-alone tools on top of the suite: the command line, bench, matrix, soak and compare."""
