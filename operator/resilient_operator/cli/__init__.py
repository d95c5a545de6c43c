"""Command-line tools that ship with the operator (the kubectl plugin ``kubectl-rsvc``)."""
