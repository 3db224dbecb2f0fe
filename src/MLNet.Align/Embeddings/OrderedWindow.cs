namespace MLNet.Align.Embeddings;

/// <summary>
/// Runs a lazy sequence of work items with up to N of them in flight on their own threads and yields the results in
/// input order (an ordered, bounded pipeline: memory O(N) results beyond the one being consumed). Items that are
/// already done (markers) pass through without taking a slot. On the first failure, on cancellation or when the
/// consumer stops early, the in-flight items are cancelled and awaited before control returns, so no item still uses
/// an encoder after the enumeration ends.
/// </summary>
internal static class OrderedWindow
{
    /// <summary>A work item: a function run on a worker thread, or a value already known.</summary>
    internal readonly struct Item<T>
    {
        private Item(Func<CancellationToken, T>? work, T? value) { WorkFunc = work; Value = value; }
        public Func<CancellationToken, T>? WorkFunc { get; }
        public T? Value { get; }
        public static Item<T> Work(Func<CancellationToken, T> work) => new(work, default);
        public static Item<T> Done(T value) => new(null, value);
    }

    /// <summary>Results of <paramref name="items"/> in order, at most <paramref name="inFlight"/> computed at once.
    /// The sequence itself is enumerated on the consumer's thread.</summary>
    public static IEnumerable<T> Run<T>(IEnumerable<Item<T>> items, int inFlight, CancellationToken ct)
    {
        if (inFlight < 1) throw new ArgumentOutOfRangeException(nameof(inFlight), inFlight, "At least one item must be in flight.");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var queue = new Queue<(Task<T>? Task, T? Value)>();
        int running = 0;
        using var source = items.GetEnumerator();
        bool more = true;
        try
        {
            while (true)
            {
                // Fill: start work until N run; a marker is queued as is (it costs no thread).
                while (more && running < inFlight)
                {
                    if (!(more = source.MoveNext())) break;
                    var item = source.Current;
                    if (item.WorkFunc is { } f)
                    {
                        var token = stop.Token;
                        queue.Enqueue((Task.Factory.StartNew(() => f(token), token, TaskCreationOptions.LongRunning, TaskScheduler.Default), default));
                        running++;
                    }
                    else queue.Enqueue((null, item.Value));
                }
                if (queue.Count == 0) yield break;
                var (task, value) = queue.Dequeue();
                if (task is null) { yield return value!; continue; }
                running--;
                // GetResult rethrows the item's own exception (not an AggregateException).
                yield return task.GetAwaiter().GetResult();
            }
        }
        finally
        {
            stop.Cancel();
            foreach (var (task, _) in queue)
                if (task is not null) try { task.Wait(CancellationToken.None); } catch (Exception) { /* the first failure already surfaced */ }
        }
    }
}
