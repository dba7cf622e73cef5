"""The boto3 adapters: every AWS call the rotator (and the sign function without the extension) makes, behind a port."""
