FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config config
COPY billing billing
COPY subscriptions subscriptions
COPY iamport_sandbox iamport_sandbox
RUN pip install --no-cache-dir -e .
COPY . .
EXPOSE 8000 8089
