# Atlas environments of this project. This file is the one home of the environment names:
# `inv` reads them from here, and env `x` takes its URL from X_DATABASE_URL (`local` from
# DATABASE_URL), Atlas's dev database from DEV_DATABASE_URL. `inv` passes .env through; for
# bare `atlas` commands load it first (see README.md).
#
# Scope: database (realm) scope, i.e. the URLs carry no `search_path`, so that models may
# live in several PostgreSQL schemas. Keep it that way: changing the scope of an existing
# migration directory changes how every statement is qualified.

locals {
  dev_url = getenv("DEV_DATABASE_URL")
  dir     = "file://migrations"
}

# The Atlas guide's environment: desired state from the models' dump.
env "sqlalchemy" {
  src = "file://schema.sql"
  dev = local.dev_url
  url = getenv("DATABASE_URL")
  migration {
    dir = local.dir
  }
}

# The target databases. `local` is the stack's `db` service (inv db.up).
env "local" {
  src = "file://schema.sql"
  dev = local.dev_url
  url = getenv("DATABASE_URL")
  migration {
    dir = local.dir
  }
}

env "staging" {
  src = "file://schema.sql"
  dev = local.dev_url
  url = getenv("STAGING_DATABASE_URL")
  migration {
    dir = local.dir
  }
}

env "production" {
  src = "file://schema.sql"
  dev = local.dev_url
  url = getenv("PRODUCTION_DATABASE_URL")
  migration {
    dir = local.dir
  }
}
