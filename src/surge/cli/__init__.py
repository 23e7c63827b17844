"""The ``surge`` command line: a thin layer over the library."""
