namespace MLNet.Align;

/// <summary>
/// Atomic file writes used everywhere in the library: write a temporary sibling (<c>NAME.tmp-XXXX</c>), flush it to
/// disk, then rename it over the target, so a reader never sees a partial file and a killed run leaves at most a
/// temp file (removed by <see cref="DeleteStaleTemps"/>). The folder is created if needed.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Marker in the names of temporary files.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>A fresh temporary sibling path of <paramref name="path"/>.</summary>
    public static string TempPathFor(string path) => path + TempMarker + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/> (which must not close the stream).</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = TempPathFor(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                if (DiskFullAfterBytes.Value is { } limit && limit.Applies(full))
                {
                    using var limited = new DiskFullStream(fs, limit.Bytes);
                    write(limited);
                }
                else write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch (IOException e) when (e.GetType() == typeof(IOException) && !e.Message.Contains(full, StringComparison.Ordinal))
        {
            TryDelete(tmp);
            // A full disk's message names no file (or only the temp): say which output could not be written.
            throw new IOException($"{e.Message} (writing {full})", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Test hook (this async flow only): writes of matching targets fail with the IOException a full disk
    /// gives after the given number of bytes, so tests can prove the previous file survives and no temp is left.</summary>
    internal static readonly AsyncLocal<DiskFullRule?> DiskFullAfterBytes = new();

    /// <summary>Which writes the disk-full simulation hits: targets whose file name ends with <see cref="FileNameSuffix"/>.</summary>
    internal sealed record DiskFullRule(string FileNameSuffix, long Bytes)
    {
        public bool Applies(string path) => Path.GetFileName(path).EndsWith(FileNameSuffix, StringComparison.Ordinal);
    }

    private sealed class DiskFullStream(Stream inner, long limit) : Stream
    {
        private long _written;
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _written;
        public override long Position { get => _written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            int room = (int)Math.Max(0, Math.Min(buffer.Length, limit - _written));
            inner.Write(buffer[..room]);
            _written += room;
            if (room < buffer.Length) throw new IOException("No space left on device (simulated disk full)");
        }
    }

    /// <summary>Writes UTF-8 text (no BOM).</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>Writes bytes.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Deletes a file, ignoring I/O and permission errors (cleanup paths).</summary>
    public static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Removes temp files a killed run left behind in <paramref name="folder"/>.</summary>
    public static void DeleteStaleTemps(string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var f in Directory.EnumerateFiles(folder, "*" + TempMarker + "*")) TryDelete(f);
    }
}
