using System.Runtime.InteropServices;

namespace MLNet.Align;

/// <summary>What a path names on disk, after following symbolic links (<see cref="InputFiles.KindOf"/>).</summary>
public enum FileKind
{
    /// <summary>Nothing there (or a dangling link).</summary>
    Missing,
    /// <summary>A regular file: the only kind read as an image, pairs file or class list.</summary>
    Regular,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A named pipe (FIFO): opening it for reading blocks until a writer appears.</summary>
    NamedPipe,
    /// <summary>A character device (e.g. /dev/zero, /dev/random: endless data).</summary>
    CharacterDevice,
    /// <summary>A block device (a disk).</summary>
    BlockDevice,
    /// <summary>A Unix domain socket.</summary>
    Socket,
    /// <summary>Anything else the platform reports.</summary>
    Other,
}

/// <summary>
/// Input-file checks made before a file is opened: a named pipe would block <c>open</c> forever and a device like
/// /dev/zero is endless, so only regular files are read as images, pairs files or class lists. On Linux the file type
/// comes from <c>statx(2)</c> (links followed, nothing opened); elsewhere from the file attributes (directories and
/// Windows devices are caught; FIFOs cannot be told apart there). The same call gives a directory's identity
/// (device + inode) so recursive walks can list each real directory once and never loop through symbolic links.
/// </summary>
public static class InputFiles
{
    /// <summary>What <paramref name="path"/> names, links followed; nothing is opened.</summary>
    public static FileKind KindOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) return FileKind.Missing;
        if (TryStatx(path, out var st))
            return st.Mode < 0 ? FileKind.Missing : (st.Mode & 0xF000) switch
            {
                0x8000 => FileKind.Regular,
                0x4000 => FileKind.Directory,
                0x1000 => FileKind.NamedPipe,
                0x2000 => FileKind.CharacterDevice,
                0x6000 => FileKind.BlockDevice,
                0xC000 => FileKind.Socket,
                _ => FileKind.Other,
            };
        if (Directory.Exists(path)) return FileKind.Directory;
        if (!File.Exists(path)) return FileKind.Missing;
        var attributes = File.GetAttributes(path);
        return (attributes & FileAttributes.Device) != 0 ? FileKind.CharacterDevice : FileKind.Regular;
    }

    /// <summary>Throws unless <paramref name="path"/> is a regular file (links followed), without opening it.</summary>
    /// <param name="path">The path to check.</param>
    /// <param name="what">What the file is for, for the message (e.g. "Image", "Pairs file", "Class list").</param>
    /// <exception cref="FileNotFoundException">Nothing there (the message names the path).</exception>
    /// <exception cref="InvalidDataException">A folder, named pipe, device or socket (the message names the path and its kind).</exception>
    public static void RequireRegularFile(string path, string what)
    {
        var kind = KindOf(path);
        if (kind == FileKind.Regular) return;
        if (kind == FileKind.Missing) throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
        throw new InvalidDataException($"{what} '{path}' is {Describe(kind)}, not a regular file; only regular files are read.");
    }

    /// <summary>"a folder", "a named pipe (FIFO)", ...: the kind in words.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a folder",
        FileKind.NamedPipe => "a named pipe (FIFO), which would block reading",
        FileKind.CharacterDevice => "a character device (endless or blocking data)",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        _ => "a special file",
    };

    /// <summary>
    /// Files under <paramref name="root"/> (recursively), each real directory listed once: a symbolic link back to an
    /// ancestor (a loop) or a second link to a folder already listed is not followed again. Only regular files are
    /// returned (FIFOs and devices inside the tree are skipped). Order: ordinal by path within each folder, folders
    /// depth-first in ordinal order.
    /// </summary>
    /// <param name="root">The folder to walk.</param>
    /// <param name="skipped">When given, receives what was not returned and why: folders not entered because their real
    /// directory had already been listed (a symbolic-link loop or a duplicate link), and entries that are not regular
    /// files (named pipes, devices, sockets, dangling links).</param>
    /// <exception cref="DirectoryNotFoundException">The root does not exist.</exception>
    public static IEnumerable<string> EnumerateFilesOnce(string root, ICollection<(string Path, string Reason)>? skipped = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Folder not found: {root}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            string dir = stack.Pop();
            if (!seen.Add(DirectoryIdentity(dir)))
            {
                skipped?.Add((dir, "a link to a folder already listed (a symbolic-link loop or a duplicate link); not followed again"));
                continue;
            }
            foreach (var f in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
            {
                var kind = KindOf(f);
                if (kind == FileKind.Regular) yield return f;
                else skipped?.Add((f, kind == FileKind.Missing ? "a dangling link" : $"{Describe(kind)}, not a regular file"));
            }
            foreach (var d in Directory.EnumerateDirectories(dir).OrderDescending(StringComparer.Ordinal)) stack.Push(d);
        }
    }

    /// <summary>A key naming the real directory behind <paramref name="path"/>: device and inode on Linux, else the
    /// fully resolved path.</summary>
    internal static string DirectoryIdentity(string path)
    {
        if (TryStatx(path, out var st) && st.Mode >= 0) return $"{st.DevMajor}:{st.DevMinor}:{st.Inode}";
        var info = new DirectoryInfo(path);
        var target = info.ResolveLinkTarget(returnFinalTarget: true);
        return Path.GetFullPath(target?.FullName ?? info.FullName);
    }

    /// <summary>Identity (device, inode) of an open file descriptor, for lock files; false where statx is unavailable.</summary>
    internal static bool TryIdentityOf(Microsoft.Win32.SafeHandles.SafeFileHandle handle, out string identity)
    {
        identity = "";
        if (!OperatingSystem.IsLinux()) return false;
        var buffer = new byte[256];
        int fd = (int)handle.DangerousGetHandle();
        try
        {
            if (statx(fd, "", AtEmptyPath, StatxBasic, buffer) != 0) return false;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
        var st = Parse(buffer);
        identity = $"{st.DevMajor}:{st.DevMinor}:{st.Inode}";
        return true;
    }

    internal static bool TryIdentityOf(string path, out string identity)
    {
        identity = "";
        if (!TryStatx(path, out var st) || st.Mode < 0) return false;
        identity = $"{st.DevMajor}:{st.DevMinor}:{st.Inode}";
        return true;
    }

    private readonly record struct StatResult(int Mode, ulong Inode, uint DevMajor, uint DevMinor);

    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasic = 0x7ff;

    // statx(2): one struct layout on every Linux architecture (unlike struct stat), glibc >= 2.28.
    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string pathname, int flags, uint mask, byte[] buffer);

    private static bool TryStatx(string path, out StatResult result)
    {
        result = default;
        if (!OperatingSystem.IsLinux()) return false;
        var buffer = new byte[256];
        try
        {
            if (statx(AtFdCwd, path, 0, StatxBasic, buffer) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                // ENOENT / ENOTDIR: nothing there (KindOf reports Missing); other errors fall back to attributes.
                if (errno is 2 or 20) { result = new StatResult(-1, 0, 0, 0); return true; }
                return false;
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
        result = Parse(buffer);
        return true;
    }

    private static StatResult Parse(byte[] b) => new(
        BitConverter.ToUInt16(b, 28),          // stx_mode
        BitConverter.ToUInt64(b, 32),          // stx_ino
        BitConverter.ToUInt32(b, 136),         // stx_dev_major
        BitConverter.ToUInt32(b, 140));        // stx_dev_minor
}
