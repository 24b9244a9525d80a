"""Sweeps: the trial a job runs for, pruners, Clara's GPU workers, results."""
