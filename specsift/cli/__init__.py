"""Command line: one module per verb, each exposing ``register(subparsers)``; main wires them."""
