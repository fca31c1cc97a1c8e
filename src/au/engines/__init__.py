"""Engines that compute a job's outputs somewhere other than this process (the job protocol still owns the directory)."""
