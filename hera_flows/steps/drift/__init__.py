"""Steps of pattern 2 (drift remediation): normalise, guard, context, monitor, smoke."""
