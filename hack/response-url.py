"""A stand-in for CloudFormation's pre-signed ResponseURL (an S3 object
URL), for the quickstart: every PUT body is written to DIR/<last path
segment>.json and answered 200. Usage: response-url.py DIR PORT"""
import http.server
import os
import sys

out, port = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        name = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "answer"
        with open(os.path.join(out, name + ".json"), "wb") as f:
            f.write(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
