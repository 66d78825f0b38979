"""What a person types: the ``splinterlab`` command line, the console of ``up``, the
operator's commands and the doctor."""
