"""Batch runs of a job: inputs read, steps computed and checked, outputs written and published."""
