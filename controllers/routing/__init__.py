"""Traffic routing between experiment variants: the route table and sticky assignment (pure, no I/O)."""
