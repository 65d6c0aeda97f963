"""``python -m demo`` runs every flow twice through Airflow against the sandbox; ``--up`` starts
``airflow standalone`` beside it (demo/run.py)."""
import sys

from demo.run import main

sys.exit(main())
