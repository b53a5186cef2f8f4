"""Reliability tools: fault injection (``faults``), the bad-input campaign (``fuzz``), the
soak (``soak``) and the campaign that runs all three and writes
``reliability/results/reliability.md`` (``python -m reliability [--quick]``)."""
