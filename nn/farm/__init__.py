"""Jobs that outgrow one machine: a job's frames split into chunks (``chunks``), run as Ray tasks (``ray_driver``).

Plain Python and this package only; Ray is imported by ``ray_driver`` alone, when a job goes to a cluster.
"""
