"""The segment language and the dynamic segment engine: parse -> ast -> passes -> compiler."""
