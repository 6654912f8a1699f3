"""The local stack: the whole API on a laptop, with no AWS account and no Docker.

``python -m local_stack`` (``make local``) starts moto's server (S3, DynamoDB, SQS over real
HTTP) and an API Gateway (REST, proxy integration) emulation whose routes, functions,
environment, table, bucket and S3 notifications all come from ``template.yaml``.

Modules: ``cfn`` (YAML + intrinsic functions), ``template`` (the SAM model the stack needs),
``resources`` (table, bucket, queues in moto), ``runtime`` (loading and invoking handlers),
``routes`` and ``events`` (API Gateway's routing, proxy event and response mapping),
``server`` (the WSGI app), ``notifications`` (S3 -> SQS -> async Lambda invocation),
``stack`` (wiring it all together) and ``__main__`` (the command line).
"""
