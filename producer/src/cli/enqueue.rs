//! `enqueue <kind>`: one job from flags. Passwords never come from a plain flag value (it
//! would sit in the shell history and the process list): `--password-stdin` or an
//! environment variable.

use super::{Ctx, Failure};
use clap::{Args, Subcommand};
use onboard_shared::jobs::*;
use onboard_shared::queue::{EnqueueOptions, JobState};
use onboard_shared::secret::Secret;
use std::io::Read;

/// `enqueue` arguments.
#[derive(Args, Debug)]
pub struct EnqueueArgs {
    #[command(subcommand)]
    job: JobArgs,
    /// A second enqueue with the same key returns the first job's id.
    #[arg(long, global = true)]
    idempotency_key: Option<String>,
    /// Max attempts for this job (default: the kind's configured value).
    #[arg(long, global = true)]
    max_attempts: Option<u32>,
    /// Do not run before this Unix time in milliseconds.
    #[arg(long, global = true)]
    run_at_ms: Option<u64>,
    /// Run only after this job succeeded.
    #[arg(long, global = true)]
    depends_on: Option<String>,
    /// The lane: live (the default) goes first; bulk keeps a minimum share.
    #[arg(long, global = true, default_value = "live")]
    lane: onboard_shared::queue::Lane,
    /// Who the work is for, for the fair shares within a lane (default: cli).
    #[arg(long, global = true)]
    source: Option<String>,
}

#[derive(Subcommand, Debug)]
enum JobArgs {
    /// ServiceCreateCustomer.
    CreateCustomer {
        /// Your id for the customer: letters, digits and _, 1 to 32.
        #[arg(long)]
        customer_id: String,
        /// Country calling code, e.g. 86.
        #[arg(long)]
        country_code: String,
        /// Phone number, digits.
        #[arg(long)]
        phone_number: String,
    },
    /// ServiceBindDevice.
    BindDevices {
        /// The customer the devices are bound to.
        #[arg(long)]
        customer_id: String,
        /// `CUSTOMER_DEVICE_NO|PRODUCT_ID/DEVICE_NAME|PRODUCT_NAME`, repeatable.
        #[arg(long = "device", required = true)]
        devices: Vec<String>,
    },
    /// CreateAccount (two phases: a code is texted to the phone).
    CreateAccount {
        /// personal or company.
        #[arg(long)]
        account_type: String,
        /// E-mail of the new account.
        #[arg(long)]
        mail: String,
        /// Phone number (digits) the verify code is texted to.
        #[arg(long)]
        phone_num: String,
        /// Country calling code, e.g. 852 (7, 380 and 86 are refused).
        #[arg(long)]
        country_code: String,
        /// ISO 3166 alpha-2 area matching the country code, e.g. HK.
        #[arg(long)]
        area: String,
        /// Optional extended information passed through.
        #[arg(long)]
        extended: Option<String>,
        /// Read the password from standard input (else ONBOARD_ACCOUNT_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
    /// POLYV add-custom-user.
    RegisterUser {
        /// E-mail of the new POLYV user.
        #[arg(long)]
        email: String,
        /// Mobile number.
        #[arg(long)]
        mobile: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Industry.
        #[arg(long)]
        industry: Option<String>,
        /// Sales id (an integer).
        #[arg(long)]
        sale_id: Option<i64>,
        /// Read the password from standard input (else ONBOARD_USER_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
}

fn password(from_stdin: bool, env: &str) -> Result<Secret, Failure> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::invalid(format!("reading the password from stdin: {e}")))?;
        let s = s.trim_end_matches(['\r', '\n']).to_string();
        if s.is_empty() {
            return Err(Failure::invalid(
                "--password-stdin: standard input was empty",
            ));
        }
        return Ok(Secret::new(s));
    }
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
        .ok_or_else(|| {
            Failure::invalid(format!(
                "a password is required: pass --password-stdin or set {env}"
            ))
        })
}

fn device(spec: &str) -> Result<DeviceInfo, Failure> {
    let parts: Vec<&str> = spec.split('|').collect();
    match parts.as_slice() {
        [no, id, name] => Ok(DeviceInfo {
            customer_device_no: no.to_string(),
            device_id: id.to_string(),
            product_name: name.to_string(),
        }),
        _ => Err(Failure::invalid(format!(
            "--device {spec:?}: expected CUSTOMER_DEVICE_NO|PRODUCT_ID/DEVICE_NAME|PRODUCT_NAME"
        ))),
    }
}

fn build(job: JobArgs) -> Result<Job, Failure> {
    Ok(match job {
        JobArgs::CreateCustomer {
            customer_id,
            country_code,
            phone_number,
        } => Job::CreateCustomer(CreateCustomerJob {
            customer_id,
            country_code,
            phone_number,
        }),
        JobArgs::BindDevices {
            customer_id,
            devices,
        } => Job::BindDevices(BindDevicesJob {
            customer_id,
            devices: devices
                .iter()
                .map(|d| device(d))
                .collect::<Result<_, _>>()?,
        }),
        JobArgs::CreateAccount {
            account_type,
            mail,
            phone_num,
            country_code,
            area,
            extended,
            password_stdin,
        } => {
            let account_type = match account_type.trim().to_ascii_lowercase().as_str() {
                "personal" => AccountType::Personal,
                "company" => AccountType::Company,
                other => {
                    return Err(Failure::invalid(format!(
                        "--account-type {other:?}: must be personal or company"
                    )))
                }
            };
            let password = password(password_stdin, "ONBOARD_ACCOUNT_PASSWORD")?;
            Job::CreateAccount(CreateAccountJob {
                account_type,
                mail,
                confirm_password: password.clone(),
                password,
                phone_num,
                country_code,
                area,
                extended,
                trade_one: None,
                trade_two: None,
            })
        }
        JobArgs::RegisterUser {
            email,
            mobile,
            name,
            industry,
            sale_id,
            password_stdin,
        } => Job::RegisterUser(RegisterUserJob {
            email,
            mobile,
            passwd: password(password_stdin, "ONBOARD_USER_PASSWORD")?,
            name,
            industry,
            sale_id,
        }),
    })
}

/// Runs `enqueue`.
pub async fn run(ctx: &Ctx, args: EnqueueArgs) -> Result<(), Failure> {
    let mut job = build(args.job)?;
    // The same normalisation as a backfill row's (`+86` and `086` are `86`, ...).
    onboard_shared::normalize::job(&mut job);
    // Validate before connecting: bad input is reported even with Redis down.
    use onboard_shared::validation::Validate;
    job.validate()
        .map_err(|e| Failure::invalid(format!("invalid {} job: {e}", job.kind())))?;
    let opts = EnqueueOptions {
        idempotency_key: args.idempotency_key,
        max_attempts: args.max_attempts,
        run_at_ms: args.run_at_ms,
        depends_on: args.depends_on,
        lane: Some(args.lane),
        source: args.source,
    };
    if let Some(parent) = &opts.depends_on {
        if onboard_shared::queue::ids::kind_of_id(parent).is_none() {
            return Err(Failure::invalid(format!(
                "--depends-on {parent:?} is not a job id (cust_…, bind_…, acct_… or user_…)"
            )));
        }
    }
    let producer = ctx.producer().await?;
    if let Some(parent) = &opts.depends_on {
        // An unknown parent, or one that already failed, would kill the job at once.
        let status = producer.status(parent, false).await?;
        if matches!(status.state, JobState::Dead | JobState::Expired) {
            return Err(Failure::invalid(format!(
                "--depends-on {parent}: that job is {}, so this one could never run; \
                 nothing was enqueued",
                status.state
            )));
        }
    }
    let enqueued = producer.enqueue(&job, &opts).await?;
    ctx.print(&enqueued, || {
        if enqueued.duplicate {
            format!(
                "{} (already enqueued with this idempotency key; nothing new)",
                enqueued.id
            )
        } else {
            enqueued.id.clone()
        }
    });
    Ok(())
}
