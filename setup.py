"""Build script; the metadata lives in setup.cfg and the build system in pyproject.toml."""

from setuptools import setup

setup()
