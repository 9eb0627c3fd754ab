"""Package layout that pyproject.toml alone cannot express.

The top-level ``templates/`` and ``configs/`` folders ship inside the wheel as the packages
``hotplex.templates`` and ``hotplex.configs``; the plugin packages live under ``chatapps/``
and ``plugins/`` but install as top-level ``hotplex_*`` packages.
"""

from setuptools import find_packages, setup

ROOTS = {"chatapps": "chatapps", "plugins": "plugins"}
package_dir = {"hotplex.templates": "templates", "hotplex.configs": "configs"}
packages = find_packages(".", include=["hotplex", "hotplex.*"])
for root in ROOTS.values():
    for name in find_packages(root, include=["hotplex_*"]):
        packages.append(name)
        package_dir[name] = f"{root}/{name.replace('.', '/')}"
packages += ["hotplex.templates", "hotplex.configs"]

setup(packages=packages, package_dir=package_dir)
