"""raftmq chaos harness (Jepsen-style): driver, nemesis, checkers, reports."""
