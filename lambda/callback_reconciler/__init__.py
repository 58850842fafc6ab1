"""Lambda that, on a schedule, ends every callback step whose work ended, died or ran past its deadline."""
