"""The HTTP service, ``segmentum serve``: one FastAPI application on one workspace.

    settings.py    ServeSettings (pydantic-settings; SEGMENTUM_SERVE_* variables)
    keys.py        API keys: sources' write keys and REST keys with scopes, stored hashed
    serve_info.py  <workspace>.serve.json: which process serves a workspace, and where
    access.py      WorkspaceAccess: the one thread that uses the workspace's connection
    consumer.py    Consumer: applies the intake log to the workspace
    state.py       ServiceState: everything one running service holds
    deps.py        FastAPI dependencies: the service, key scopes, the workspace
    errors.py      library errors -> HTTP answers, at the edge
    tracking.py    the Segment-compatible tracking routes (/v1/...)
    api/           the REST API under /api, one router per resource (segments, contacts,
                   analytics, personas, activation, crm); schemas/: their pydantic shapes
    app.py         create_app(): the application, its routers and lifespan
    server.py      serve(): uvicorn on the app, the serve file written and removed

Importing this package (or keys / serve_info) does not import FastAPI: the CLI reads keys
and serve files without it.
"""
