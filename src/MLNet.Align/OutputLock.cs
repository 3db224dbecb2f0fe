using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MLNet.Align;

/// <summary>Who holds (or held) an <see cref="OutputLock"/>: read from the lock's owner file.</summary>
/// <param name="ProcessId">Process id of the holder.</param>
/// <param name="CommandLine">The holder's command line (e.g. <c>mlnet-align train --store s --out o</c>).</param>
/// <param name="StartedUtc">When the holder process started (UTC), to tell a live holder from a reused PID.</param>
/// <param name="Host">Machine name of the holder.</param>
/// <param name="AcquiredUtc">When the lock was taken (UTC).</param>
public sealed record OutputLockHolder(
    [property: JsonPropertyName("pid")] int ProcessId,
    [property: JsonPropertyName("command")] string CommandLine,
    [property: JsonPropertyName("started")] DateTimeOffset StartedUtc,
    [property: JsonPropertyName("host")] string Host,
    [property: JsonPropertyName("acquired")] DateTimeOffset AcquiredUtc)
{
    /// <summary>"PID 123 (`cmd`), started 2026-01-01 10:00:00Z on host h".</summary>
    public override string ToString()
        => $"PID {ProcessId} (`{CommandLine}`), started {StartedUtc.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture)} on host {Host}";
}

/// <summary>Another live process holds the lock on an output folder (an <see cref="IOException"/>: the CLI prints it
/// as one error line).</summary>
public sealed class OutputLockedException(string message, string folder, OutputLockHolder? holder) : IOException(message)
{
    /// <summary>The locked output folder (or file).</summary>
    public string Folder { get; } = folder;
    /// <summary>The holder, when its owner file could be read.</summary>
    public OutputLockHolder? Holder { get; } = holder;
}

/// <summary>
/// One writer per output: an exclusive lock on an output folder (an embedding store, a training <c>--out</c>, an
/// index), so a second process writing the same place fails at once with a message naming the holder, instead of both
/// printing success with one result silently gone. The lock is a hidden sibling file <c>.NAME</c><see cref="LockSuffix"/>,
/// held open with <see cref="FileShare.None"/> (an OS lock: <c>flock</c> on Linux and macOS, a share lock on Windows)
/// for the holder's lifetime, so the operating system releases it when the holder dies, however it dies; the holder's
/// PID, command line and start time are written beside it (<see cref="OwnerSuffix"/>) for the message. A lock left by
/// a process that is no longer running is stale and is taken over (reported through the log callback). Dispose releases
/// it and removes both files (and the parent folder, when the lock created it and it is still empty).
/// </summary>
public sealed class OutputLock : IDisposable
{
    /// <summary>Suffix of the lock file, a hidden sibling of the output: <c>.NAME.mlnet-align.lock</c>.</summary>
    public const string LockSuffix = ".mlnet-align.lock";
    /// <summary>Suffix of the owner file (holder's PID, command line, start time; JSON): <c>.NAME.mlnet-align.lock.owner</c>.</summary>
    public const string OwnerSuffix = ".mlnet-align.lock.owner";

    private FileStream? _stream;
    private readonly bool _createdFolder;

    private OutputLock(string target, string folder, string lockPath, string ownerPath, FileStream stream, bool createdFolder, OutputLockHolder holder, OutputLockHolder? takenOver)
    {
        Target = target; Folder = folder; LockPath = lockPath; OwnerPath = ownerPath; _stream = stream; _createdFolder = createdFolder;
        Holder = holder; TakenOverFrom = takenOver;
    }

    /// <summary>The locked output: a folder, or a file for <see cref="AcquireForFile"/> (absolute).</summary>
    public string Target { get; }
    /// <summary>The folder holding the lock files (the output's parent).</summary>
    public string Folder { get; }
    /// <summary>The lock file.</summary>
    public string LockPath { get; }
    /// <summary>The owner file.</summary>
    public string OwnerPath { get; }
    /// <summary>This process, as recorded in the owner file.</summary>
    public OutputLockHolder Holder { get; }
    /// <summary>The dead process whose stale lock was taken over, or null.</summary>
    public OutputLockHolder? TakenOverFrom { get; }

    /// <summary>Locks the output <paramref name="folder"/> (a store, a training <c>--out</c>, an index) for writing.
    /// The lock files are hidden siblings (<c>PARENT/.NAME.mlnet-align.lock</c> and <c>.owner</c>), so the folder's own
    /// content is untouched (a store folder must hold only the store); the parent is created if needed.</summary>
    /// <param name="folder">The output folder (it need not exist yet).</param>
    /// <param name="commandLine">What to record as the holder's command; default the process's command line.</param>
    /// <param name="log">Receives one line when a stale lock of a dead process is taken over (e.g. stderr).</param>
    /// <exception cref="OutputLockedException">Another live process (or another lock in this process) holds it; the
    /// message names the output and the holder's PID, command and start time.</exception>
    /// <exception cref="IOException">The parent folder cannot be created or written.</exception>
    public static OutputLock Acquire(string folder, string? commandLine = null, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        return AcquireBeside(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)), commandLine, log);
    }

    /// <summary>Locks one output file <paramref name="outputFile"/> (e.g. a classifier zip, a subset pairs file), with
    /// the same hidden sibling lock files as <see cref="Acquire"/>: writers of other files in that folder are not blocked.</summary>
    /// <inheritdoc cref="Acquire(string, string?, Action{string}?)"/>
    public static OutputLock AcquireForFile(string outputFile, string? commandLine = null, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputFile);
        return AcquireBeside(Path.GetFullPath(outputFile), commandLine, log);
    }

    private static OutputLock AcquireBeside(string target, string? commandLine, Action<string>? log)
    {
        string dir = Path.GetDirectoryName(target) ?? throw new IOException($"Output '{target}' has no parent folder to hold its lock.");
        string name = Path.GetFileName(target);
        bool created = !Directory.Exists(dir);
        Directory.CreateDirectory(dir);
        try
        {
            return AcquireIn(target, dir, Path.Combine(dir, $".{name}{LockSuffix}"), Path.Combine(dir, $".{name}{OwnerSuffix}"), created, commandLine, log);
        }
        catch
        {
            if (created) TryDeleteEmptyFolder(dir);
            throw;
        }
    }

    private static OutputLock AcquireIn(string target, string dir, string lockPath, string ownerPath, bool created, string? commandLine, Action<string>? log)
    {
        for (int attempt = 0; ; attempt++)
        {
            FileStream fs;
            try
            {
                fs = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException && File.Exists(lockPath))
            {
                throw Locked(target, lockPath, ReadOwner(ownerPath));
            }
            // A holder releasing the lock unlinks the file: make sure the path still names the file we locked.
            if (InputFiles.TryIdentityOf(fs.SafeFileHandle, out var locked) && (!InputFiles.TryIdentityOf(lockPath, out var named) || named != locked))
            {
                fs.Dispose();
                if (attempt < 5) continue;
                throw new IOException($"Could not lock output folder '{dir}': its lock file keeps changing.");
            }
            try
            {
                var previous = ReadOwner(ownerPath);
                // With OS locking working, a live holder keeps the file locked; a live recorded owner here means locking
                // is unavailable (e.g. DOTNET_SYSTEM_IO_DISABLEFILELOCKING, some network file systems): trust the PID.
                if (previous is not null && IsAlive(previous)) throw Locked(target, lockPath, previous);
                var me = Current(commandLine);
                AtomicFile.WriteAllBytes(ownerPath, JsonSerializer.SerializeToUtf8Bytes(me, new JsonSerializerOptions { WriteIndented = true }));
                if (previous is not null)
                    log?.Invoke($"warning: took over the stale lock on '{target}' left by {previous}, which is no longer running.");
                return new OutputLock(target, dir, lockPath, ownerPath, fs, created, me, previous);
            }
            catch
            {
                fs.Dispose();
                throw;
            }
        }
    }

    private static OutputLockedException Locked(string dir, string lockPath, OutputLockHolder? holder)
        => new($"Output '{dir}' is being written by another process: {holder?.ToString() ?? "holder unknown (its owner file is unreadable)"}. " +
               $"Wait for it to finish or choose another output (lock file: {lockPath}).", dir, holder);

    private static OutputLockHolder Current(string? commandLine)
    {
        using var p = Process.GetCurrentProcess();
        string command = commandLine ?? string.Join(' ', Environment.GetCommandLineArgs().Select(a => a.Contains(' ') ? $"\"{a}\"" : a));
        return new OutputLockHolder(Environment.ProcessId, command, new DateTimeOffset(p.StartTime.ToUniversalTime()), Environment.MachineName, DateTimeOffset.UtcNow);
    }

    /// <summary>Whether the recorded holder is still running: same host, the PID exists and started when recorded
    /// (a reused PID started later). Another host cannot be checked, so it counts as alive.</summary>
    internal static bool IsAlive(OutputLockHolder h)
    {
        if (!string.Equals(h.Host, Environment.MachineName, StringComparison.Ordinal)) return true;
        try
        {
            using var p = Process.GetProcessById(h.ProcessId);
            if (p.HasExited) return false;
            return Math.Abs((p.StartTime.ToUniversalTime() - h.StartedUtc.UtcDateTime).TotalSeconds) < 2;
        }
        catch (ArgumentException) { return false; }          // no such process
        catch (InvalidOperationException) { return false; }  // exited meanwhile
    }

    /// <summary>The holder recorded in <paramref name="ownerPath"/>, or null when absent or unreadable.</summary>
    internal static OutputLockHolder? ReadOwner(string ownerPath)
    {
        try { return JsonSerializer.Deserialize<OutputLockHolder>(File.ReadAllBytes(ownerPath)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException) { return null; }
    }


    /// <summary>Releases the lock: removes the owner and lock files (and the folder when this lock created it and it is
    /// empty), then closes the lock file. Idempotent.</summary>
    public void Dispose()
    {
        var fs = Interlocked.Exchange(ref _stream, null);
        if (fs is null) return;
        AtomicFile.TryDelete(OwnerPath);
        AtomicFile.TryDelete(LockPath); // unlinked while still locked, so nobody locks a file that is about to vanish
        fs.Dispose();
        if (_createdFolder) TryDeleteEmptyFolder(Folder);
    }

    private static void TryDeleteEmptyFolder(string dir)
    {
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
