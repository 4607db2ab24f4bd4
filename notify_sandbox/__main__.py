"""python -m notify_sandbox --host 127.0.0.1 --port 8091"""

import argparse

from notify_sandbox.server import DEFAULT_API_KEY, DEFAULT_API_SECRET, NotifySandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="notify_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--api-secret", default=DEFAULT_API_SECRET)
    args = parser.parse_args()
    server = NotifySandbox(host=args.host, port=args.port, api_key=args.api_key, api_secret=args.api_secret)
    print(f"notify sandbox on {server.url} (phone page: {server.url}/__sandbox__/phone)", flush=True)  # noqa: T201
    server.serve_forever()


if __name__ == "__main__":
    main()
