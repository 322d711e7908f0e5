"""``advcl grid``: an experiment as one TOML file — recipes × overrides × seeds, then evaluations of every
finished run, run on local worker processes or as SLURM jobs, and aggregated into one table per evaluation.

    spec.py      the grid file: its schema, validation (one line naming the key) and expansion into named jobs
    steps.py     the advcl commands of one job (train or resume, then each evaluation), skipping finished ones
    local.py     the local executor: N worker slots, a progress view, Ctrl-C and killed workers
    slurm.py     the SLURM executor through submitit (``pip install advcl[slurm]``)
    aggregate.py mean ± sample s.d. over seeds and the paired tests against the baseline
    report.py    the markdown, JSON and plots of ``advcl grid report``
"""
