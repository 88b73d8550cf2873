//! `dataspace demo --serve`: everything keeps running after the story,
//! with the URLs and commands to try, until Ctrl-C.

use anyhow::{Context, Result};
use connector::home::admin_token;

use super::space::{PLATFORM, Space};
use crate::served::Served;

/// Prints what to try against the running space and waits for Ctrl-C;
/// `agreement` is the SME's agreement still in force, `keep` whether the
/// demo's folder stays afterwards.
pub async fn serve_until_interrupted(
    space: &Space,
    platform: &Served,
    sme: &Served,
    agreement: &str,
    keep: bool,
) -> Result<()> {
    print_services(space, platform, sme)?;
    print_python_client(platform, sme, agreement);
    if keep {
        println!("\nPress Ctrl-C to stop; the folder stays.");
    } else {
        println!("\nPress Ctrl-C to stop and remove the demo's folder.");
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("stopping");
    Ok(())
}

/// The services' URLs and the commands and requests to try against them.
fn print_services(space: &Space, platform: &Served, sme: &Served) -> Result<()> {
    let platform_home = platform.home.display();
    let token = admin_token(&platform.home)?;
    println!("\nEverything keeps running. Try:");
    println!("  catalog        {}", space.catalog_url);
    println!(
        "  platform       {}   (admin token in {platform_home}/admin.token)",
        platform.url
    );
    println!("  SME            {}", sme.url);
    println!(
        "  officer        {}/officer   (sign in with the admin token)",
        platform.url
    );
    println!();
    println!(
        "  dataspace catalog search --catalog {} \"supplier\"",
        space.catalog_url
    );
    println!(
        "  dataspace catalog show --catalog {} {PLATFORM}/telemetry",
        space.catalog_url
    );
    println!(
        "  curl {}/providers/{PLATFORM}/openness.html",
        space.catalog_url
    );
    println!("  curl {}/.well-known/dcat", space.catalog_url);
    println!("  curl {}/offers", platform.url);
    println!("  dataspace dataset list --home {platform_home}");
    println!("  dataspace agreement list --home {platform_home}");
    println!("  dataspace audit list --home {platform_home} --decision refused");
    println!(
        "  dataspace audit sql --home {platform_home} \"SELECT kind, count(*) FROM audit GROUP BY kind\""
    );
    println!(
        "  dataspace audit verify --connector {} --token {token}",
        platform.url
    );
    println!(
        "  curl -H 'Authorization: Bearer {token}' {}/admin/negotiations",
        platform.url
    );
    Ok(())
}

/// The Python client of `examples/query_arrow.py`, under the SME's
/// agreement still in force.
fn print_python_client(platform: &Served, sme: &Served, agreement: &str) {
    println!(
        "  python3 examples/query_arrow.py --home {} --provider {} --agreement {agreement} \\\n      \"SELECT part, count(*) AS weeks, avg(defects_ppm) AS ppm FROM supplier_quality GROUP BY part\"",
        sme.home.display(),
        platform.url
    );
    println!(
        "    (needs `pip install pyarrow cryptography`; the SME's agreement {agreement} is in force)"
    );
}
