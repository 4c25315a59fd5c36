.PHONY: run test
# Set up everything and run the gateway on the embedded default (SQLite, demo data).
run:
	./scripts/run.sh
# The whole test suite (SQLite, then PostgreSQL when reachable).
test:
	./scripts/test.sh
