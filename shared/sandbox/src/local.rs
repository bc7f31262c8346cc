//! Local sandboxes: one private directory per task.

use std::path::{Path, PathBuf};

use aicity_domain::ids::{SandboxId, TaskId};
use aicity_domain::task::model::{TaskInput, is_safe_file_name};

use crate::{Access, Sandbox, SandboxError, SandboxFuture, SandboxProvider};

pub struct LocalSandboxes {
    root: PathBuf,
}

impl LocalSandboxes {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory of a sandbox id, if the id is one of ours (never a path).
    pub fn path_of(&self, sandbox_id: &str) -> Option<PathBuf> {
        sandbox_id.parse::<SandboxId>().ok()?;
        Some(self.root.join(sandbox_id))
    }

    async fn make(
        &self,
        task: &TaskId,
        task_type: &str,
        input: &TaskInput,
    ) -> Result<Sandbox, SandboxError> {
        let id = SandboxId::new().to_string();
        // Absolute: the agent is told this path and runs its command there.
        let dir = std::path::absolute(self.root.join(&id))
            .map_err(|e| SandboxError::Unavailable(e.to_string()))?;
        let files = dir.join("input");
        let io = |e: std::io::Error| SandboxError::Unavailable(e.to_string());
        tokio::fs::create_dir_all(&files).await.map_err(io)?;
        restrict(&dir).await.map_err(io)?;
        let manifest = serde_json::json!({
            "taskId": task, "taskType": task_type, "sandboxId": id, "input": input,
        });
        tokio::fs::write(dir.join("task.json"), manifest.to_string())
            .await
            .map_err(io)?;
        if let Some(code) = &input.code {
            tokio::fs::write(dir.join("code.txt"), code)
                .await
                .map_err(io)?;
        }
        for file in &input.files {
            // Validated at submission; checked again because this writes to disk.
            if !is_safe_file_name(&file.name) {
                return Err(SandboxError::Invalid(format!(
                    "unsafe file name {:?}",
                    file.name
                )));
            }
            tokio::fs::write(files.join(&file.name), &file.content)
                .await
                .map_err(io)?;
        }
        Ok(Sandbox {
            id,
            access: Access::Local { path: dir },
        })
    }

    async fn remove(&self, sandbox_id: &str) -> Result<bool, SandboxError> {
        let Some(dir) = self.path_of(sandbox_id) else {
            return Err(SandboxError::Invalid("not a sandbox id".into()));
        };
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SandboxError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(unix)]
async fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).await
}

#[cfg(not(unix))]
async fn restrict(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

impl SandboxProvider for LocalSandboxes {
    fn name(&self) -> &'static str {
        "local"
    }

    fn create<'a>(
        &'a self,
        task: &'a TaskId,
        task_type: &'a str,
        input: &'a TaskInput,
    ) -> SandboxFuture<'a, Sandbox> {
        Box::pin(self.make(task, task_type, input))
    }

    fn destroy<'a>(&'a self, sandbox_id: &'a str) -> SandboxFuture<'a, bool> {
        Box::pin(self.remove(sandbox_id))
    }
}
