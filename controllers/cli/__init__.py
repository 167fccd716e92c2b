"""The ``kaizen`` command line (``controllers.cli.main:app``); ``kaizen up``/``down`` come from the devstack package when it is installed."""
