import sys

from squeezenet.cli import main

sys.exit(main())
