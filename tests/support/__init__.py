"""What the test suite shares: service fixtures (Kafka, databases, buses, HTTP and object
storage), model builders for sharded and reference runs, fault tools and small checks.

Test modules import from here by name (``from support.services import IN_CI``); pytest puts
``tests/`` on the import path (``pythonpath`` in ``pyproject.toml``), and so do the child
processes of sharded runs, which import the model builders by name.
"""
