//! A PostgreSQL schema of its own for one test: the server comes from
//! `RULESAGA_TEST_POSTGRES` (CI: `postgres://postgres@127.0.0.1:5432/test`); each
//! [`Schema`] is new and random, so parallel tests and reruns never meet, and it is
//! dropped with everything in it at the end.
#![allow(dead_code)]

/// The variable naming the test server.
pub const VAR: &str = "RULESAGA_TEST_POSTGRES";

/// One test's schema.
pub struct Schema {
    base: String,
    pub name: String,
}

/// The server's URL, or `None` after printing that `test` was skipped and why.
pub fn server(test: &str) -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped {test}: set {VAR} to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            None
        }
    }
}

/// Run SQL on the server (on a thread of its own, so it works in and out of async
/// code).
pub fn sql(base: &str, statements: &str) {
    let (base, statements) = (base.to_string(), statements.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{VAR}={base}: {e}"));
            tokio::spawn(conn);
            client
                .batch_execute(&statements)
                .await
                .unwrap_or_else(|e| panic!("{statements}: {e:?}"));
        });
    })
    .join()
    .unwrap();
}

impl Schema {
    /// A new, empty schema on the server at `base`.
    pub fn new(base: &str) -> Schema {
        let name = format!("rulesaga_test_{}", uuid::Uuid::new_v4().simple());
        sql(base, &format!("CREATE SCHEMA {name}"));
        Schema {
            base: base.to_string(),
            name,
        }
    }

    /// The server's URL with this schema as the search path.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.base, self.name)
    }

    /// Run SQL in this schema.
    pub fn sql(&self, statements: &str) {
        sql(
            &self.base,
            &format!("SET search_path TO {}; {statements}", self.name),
        );
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        sql(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}
