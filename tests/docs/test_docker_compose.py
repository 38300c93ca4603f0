"""docker-compose.yml is for users' own machines; here its structure is checked against the
addresses the examples use by default."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def load():
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_ports_match_the_examples():
    services = load()["services"]
    assert set(services) == {"kafka", "schema-registry", "postgres"}
    assert "9092:9092" in services["kafka"]["ports"]
    assert "8081:8081" in services["schema-registry"]["ports"]
    assert "5432:5432" in services["postgres"]["ports"]


def test_kafka_runs_in_kraft_mode_and_advertises_localhost():
    env = load()["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "ZOOKEEPER" not in " ".join(env).upper()


def test_schema_registry_reaches_kafka_on_the_internal_listener():
    services = load()["services"]
    registry = services["schema-registry"]
    internal = registry["environment"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"]
    assert internal.split("//")[1] in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka" in registry["depends_on"]


def test_postgres_credentials_match_the_readme_url():
    env = load()["services"]["postgres"]["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        "postgres",
        "postgres",
        "postgres",
    )
