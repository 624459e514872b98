"""Pieces every app shares and that depend on no app: encryption of secrets at rest and its system check."""
