import sys

from hera_flows.cli import main

sys.exit(main())
