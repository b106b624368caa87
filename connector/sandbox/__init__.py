"""The built-in vendor sandbox: loopback fakes of FreshBooks and Jira (Atlassian sign-in included).

A Django app of its own (label "sandbox", connector/sandbox/apps.py), installed only in sandbox mode
(config/settings.py) and by the tests; production code never imports it (an import-linter contract in
pyproject.toml). The same modules are the tests' vendor fakes. `runtime.Sandbox` assembles them for
`manage.py sandbox`; `tenant.setup_tenant()` creates the sandbox tenant with its default mappings and worklog rule.
"""
