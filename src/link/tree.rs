//! The shared browser's process tree on Windows, where there are no process groups: a
//! Job Object that kills every process in it once the last handle to it closes
//! (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`).
//!
//! The instance that launches the browser creates the job, named after the browser's
//! pid, and puts the browser in it (the helpers the browser starts later are in it
//! too). Every instance that uses the browser, and its watcher, hold a handle for as
//! long as they run: when the last of them is gone — also when they were all killed —
//! Windows ends the whole tree. On other systems these functions do nothing or answer
//! from the process table; there, process groups do the same work.

/// Puts the just-started browser `child` in a new job named after its pid, and keeps
/// a handle to the job for the life of this process.
pub fn adopt(child: &std::process::Child) {
    #[cfg(windows)]
    win::adopt(child);
    #[cfg(not(windows))]
    let _ = child;
}

/// Keeps a handle to the job of the browser `pid` for the life of this process, so the
/// browser lives at least as long as this process does.
pub fn hold(pid: u32) {
    #[cfg(windows)]
    win::hold(pid);
    #[cfg(not(windows))]
    let _ = pid;
}

/// Ends the browser `pid` and every process of its job at once.
pub fn end(pid: u32) {
    #[cfg(windows)]
    win::end(pid);
    #[cfg(not(windows))]
    let _ = pid;
}

/// Whether the process `pid` runs (Windows; elsewhere the caller asks the system).
#[cfg(windows)]
pub fn alive(pid: u32) -> bool {
    win::alive(pid)
}

#[cfg(windows)]
mod win {
    use std::os::windows::io::AsRawHandle;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, STILL_ACTIVE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, OpenJobObjectW,
        SetInformationJobObject, TerminateJobObject,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_TERMINATE,
        TerminateProcess,
    };

    /// `JOB_OBJECT_QUERY | JOB_OBJECT_TERMINATE`.
    const JOB_ACCESS: u32 = 4 | 8;

    fn job_name(pid: u32) -> Vec<u16> {
        format!("Local\\tabmux-browser-{pid}")
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect()
    }

    pub fn adopt(child: &std::process::Child) {
        let name = job_name(child.id());
        // SAFETY: plain Win32 calls on a handle this function owns and on the child's
        // process handle, which `child` keeps open for the duration.
        unsafe {
            let job = CreateJobObjectW(std::ptr::null(), name.as_ptr());
            if job.is_null() {
                tracing::warn!(
                    "cannot create a job for the shared browser: {}",
                    std::io::Error::last_os_error()
                );
                return;
            }
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
            info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let ok = SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            ) != 0
                && AssignProcessToJobObject(job, child.as_raw_handle() as HANDLE) != 0;
            if !ok {
                tracing::warn!(
                    "cannot put the shared browser in a job: {}",
                    std::io::Error::last_os_error()
                );
                CloseHandle(job);
            }
            // Otherwise the handle stays open until this process ends.
        }
    }

    pub fn hold(pid: u32) {
        let name = job_name(pid);
        // SAFETY: opens a named job; the handle stays open until this process ends.
        let job = unsafe { OpenJobObjectW(JOB_ACCESS, 0, name.as_ptr()) };
        if job.is_null() {
            tracing::debug!(pid, "the shared browser has no job to hold");
        }
    }

    pub fn end(pid: u32) {
        let name = job_name(pid);
        // SAFETY: handles opened here are closed here.
        unsafe {
            let job = OpenJobObjectW(JOB_ACCESS, 0, name.as_ptr());
            if !job.is_null() {
                TerminateJobObject(job, 0);
                CloseHandle(job);
            }
            let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
            if !process.is_null() {
                TerminateProcess(process, 0);
                CloseHandle(process);
            }
        }
    }

    pub fn alive(pid: u32) -> bool {
        if pid == 0 {
            return false;
        }
        // SAFETY: the handle opened here is closed here.
        unsafe {
            let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if process.is_null() {
                return false;
            }
            let mut code = 0u32;
            let running =
                GetExitCodeProcess(process, &mut code) != 0 && code == STILL_ACTIVE as u32;
            CloseHandle(process);
            running
        }
    }
}
