//! The operator's NATS security for a cluster: runtimes that reach a TLS server which checks
//! their certificates, and the clear errors when a runtime lacks what the server asks. Real
//! `nats-server`, real `flowd serve` and `flowd run` processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::brokers::{self, Broker};
use common::served::Served;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::json;

/// A certificate authority, and a server and a client certificate it signed, as PEM files.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        let dir = tempfile::tempdir().expect("a directory");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("a key"))
            .expect("a CA");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("written");
        for (name, names) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
            ),
            ("client", vec!["flowd-runtime".to_string()]),
        ] {
            let key = KeyPair::generate().expect("a key");
            let certificate = CertificateParams::new(names)
                .expect("parameters")
                .signed_by(&key, &ca)
                .expect("signed");
            std::fs::write(dir.path().join(format!("{name}.pem")), certificate.pem())
                .expect("written");
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem())
                .expect("written");
        }
        Certificates { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A NATS server that speaks only TLS and wants a client certificate signed by the CA.
    fn server(&self) -> Option<Broker> {
        let [cert, key, ca] = ["server.pem", "server.key", "ca.pem"].map(|f| self.file(f));
        brokers::nats_with(&[
            "--tls",
            "--tlscert",
            path(&cert),
            "--tlskey",
            path(&key),
            "--tlsverify",
            "--tlscacert",
            path(&ca),
        ])
    }

    /// Every security option a runtime needs for [`Certificates::server`].
    fn options(&self) -> Vec<String> {
        [
            ("--nats-ca", "ca.pem"),
            ("--nats-cert", "client.pem"),
            ("--nats-key", "client.key"),
        ]
        .iter()
        .flat_map(|(option, file)| [option.to_string(), path(&self.file(file)).to_string()])
        .collect()
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `flowd run` of `ticks (home) -> there (west) -> show (home)` over `server`, with `options`.
fn run(server: &Broker, options: &[String]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("a directory");
    let graph = json!({
        "properties": {"name": "guarded"},
        "processes": {
            "ticks": {"component": "core/Interval"},
            "there": {"component": "core/Repeat", "metadata": {"runtime": "west"}},
            "show": {"component": "core/Output"}
        },
        "connections": [
            {"data": 1, "tgt": {"process": "ticks", "port": "interval"}},
            {"data": 20, "tgt": {"process": "ticks", "port": "count"}},
            {"src": {"process": "ticks", "port": "out"}, "tgt": {"process": "there", "port": "in"}},
            {"src": {"process": "there", "port": "out"}, "tgt": {"process": "show", "port": "in"}}
        ]
    });
    let file = dir.path().join("guarded.json");
    std::fs::write(&file, graph.to_string()).expect("written");
    Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["run", "--nats", &format!("nats://{}", server.address)])
        .args(["--name", "home"])
        .args(options)
        .arg(&file)
        .env_remove("FLOWD_LOG")
        .output()
        .expect("flowd run runs")
}

#[test]
fn runtimes_with_the_operators_certificates_run_a_graph_over_tls() {
    let certificates = Certificates::new();
    let Some(server) = certificates.server() else {
        return;
    };
    let state = tempfile::tempdir().expect("a directory");
    let url = format!("nats://{}", server.address);
    let mut args = vec!["--nats", &url, "--name", "west"];
    let options = certificates.options();
    args.extend(options.iter().map(String::as_str));
    let _west = Served::start(&args, state.path());
    let output = run(&server, &options);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = (1..=20).map(|n| n.to_string()).collect();
    assert_eq!(lines, expected);
}

#[test]
fn a_runtime_without_what_the_server_asks_is_refused_with_the_reason() {
    let certificates = Certificates::new();
    let Some(server) = certificates.server() else {
        return;
    };
    // No client certificate: the server refuses the connection.
    let ca_only = vec![
        "--nats-ca".to_string(),
        path(&certificates.file("ca.pem")).to_string(),
    ];
    let output = run(&server, &ca_only);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot connect to NATS"), "{stderr}");
    // No CA: the server's certificate cannot be trusted.
    let output = run(&server, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot connect to NATS"), "{stderr}");
    // A file that is not there is named.
    let missing = vec![
        "--nats-creds".to_string(),
        "/nonexistent/flowd.creds".to_string(),
    ];
    let output = run(&server, &missing);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("/nonexistent/flowd.creds"), "{stderr}");
}

/// A JWT of `claims` (whose `iss` is `issuer`'s public key) signed by `issuer`, as NATS
/// servers in operator mode read them.
fn jwt(issuer: &nkeys::KeyPair, mut claims: serde_json::Value) -> String {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    claims["iss"] = json!(issuer.public_key());
    claims["iat"] = json!(1_700_000_000u64);
    claims["jti"] = json!(format!("{:x}", std::process::id()));
    let header = url.encode(json!({"typ": "JWT", "alg": "ed25519-nkey"}).to_string());
    let body = url.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).expect("signed");
    format!("{signed}.{}", url.encode(signature))
}

/// A NATS server in operator mode with one account, and a credentials file for a user of it.
fn operator_server(dir: &Path) -> Option<(Broker, PathBuf)> {
    let (operator, account, system, user) = (
        nkeys::KeyPair::new_operator(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_account(),
        nkeys::KeyPair::new_user(),
    );
    let unlimited = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1
    });
    let operator_jwt = jwt(
        &operator,
        json!({"sub": operator.public_key(), "name": "op", "nats": {"type": "operator", "version": 2}}),
    );
    let account_jwt = jwt(
        &operator,
        json!({"sub": account.public_key(), "name": "flowd",
               "nats": {"type": "account", "version": 2, "limits": unlimited}}),
    );
    // JetStream wants a system account.
    let system_jwt = jwt(
        &operator,
        json!({"sub": system.public_key(), "name": "SYS",
               "nats": {"type": "account", "version": 2, "limits": unlimited}}),
    );
    let user_jwt = jwt(
        &account,
        json!({"sub": user.public_key(), "name": "runtime",
               "nats": {"type": "user", "version": 2, "pub": {}, "sub": {},
                        "subs": -1, "data": -1, "payload": -1}}),
    );
    let config = dir.join("operator.conf");
    std::fs::write(
        &config,
        format!(
            "operator: {operator_jwt}\nsystem_account: {system}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {account}: {account_jwt}\n  {system}: {system_jwt}\n}}\n",
            account = account.public_key(),
            system = system.public_key(),
        ),
    )
    .expect("written");
    let creds = dir.join("runtime.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().expect("a seed")
        ),
    )
    .expect("written");
    let server = brokers::nats_with(&["-c", path(&config)])?;
    Some((server, creds))
}

#[test]
fn runtimes_with_a_credentials_file_run_a_graph_on_a_server_in_operator_mode() {
    let dir = tempfile::tempdir().expect("a directory");
    let Some((server, creds)) = operator_server(dir.path()) else {
        return;
    };
    let state = tempfile::tempdir().expect("a directory");
    let url = format!("nats://{}", server.address);
    let _west = Served::start(
        &[
            "--nats",
            &url,
            "--name",
            "west",
            "--nats-creds",
            path(&creds),
        ],
        state.path(),
    );
    let with_creds = vec!["--nats-creds".to_string(), path(&creds).to_string()];
    let output = run(&server, &with_creds);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 20);
    // Without them the server refuses the runtime.
    let output = run(&server, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot connect to NATS"), "{stderr}");
}
