//! [`Recycle`]: the buffer of a `Vec<A>`, read front to back as `A`s and
//! written front to back as `B`s, no larger than `A`s, in the same memory.
//!
//! A replay consumes a long vector of events and produces a vector of
//! messages, at most one per event. Allocating the messages anew means
//! fresh pages: a page fault and a zeroed page for every 4 KiB, which on a
//! long log costs as much as the replay itself. Here each message is written
//! over events already read, and the buffer is then shrunk in place, so the
//! replay touches no new memory. Unlike `collect`'s in-place reuse, the
//! messages written so far stay reachable (an edit changes an earlier
//! message) while the events after them are still being read.
//!
//! The one rule that keeps the two apart: a `B` may be written only over
//! bytes of `A`s already taken, that is, never more `B`s than `A`s taken.
//! [`Recycle::push`] refuses otherwise.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::{self, NonNull};

pub(crate) struct Recycle<A, B> {
    /// Start of the buffer, aligned for both `A` and `B`.
    buf: NonNull<u8>,
    /// Capacity of the original vector, in `A`s.
    cap: usize,
    /// `A`s in the buffer; those in `taken..len` are still owned here.
    len: usize,
    taken: usize,
    /// `B`s written at the start of the buffer.
    written: usize,
    _owns: PhantomData<(A, B)>,
}

impl<A, B> Recycle<A, B> {
    /// Checked at compile time for each pair of types used.
    const FITS: () = {
        assert!(mem::size_of::<B>() <= mem::size_of::<A>());
        assert!(mem::size_of::<B>() > 0);
        assert!(mem::align_of::<B>() == mem::align_of::<A>());
    };

    pub fn new(items: Vec<A>) -> Self {
        let () = Self::FITS;
        let mut items = ManuallyDrop::new(items);
        let (cap, len) = (items.capacity(), items.len());
        let buf =
            NonNull::new(items.as_mut_ptr().cast::<u8>()).expect("a Vec's pointer is non-null");
        Recycle {
            buf,
            cap,
            len,
            taken: 0,
            written: 0,
            _owns: PhantomData,
        }
    }

    fn a_ptr(&self) -> *mut A {
        self.buf.as_ptr().cast()
    }

    fn b_ptr(&self) -> *mut B {
        self.buf.as_ptr().cast()
    }

    /// How many `A`s were taken.
    #[cfg(test)]
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// The next `A`, moved out.
    pub fn take(&mut self) -> Option<A> {
        if self.taken == self.len {
            return None;
        }
        // SAFETY: `taken < len`: that `A` is initialized and still owned
        // here; advancing `taken` gives its ownership to the caller.
        let a = unsafe { ptr::read(self.a_ptr().add(self.taken)) };
        self.taken += 1;
        Some(a)
    }

    /// The `A` that the `ahead + 1`-th next [`take`] returns.
    ///
    /// [`take`]: Recycle::take
    pub fn peek(&self, ahead: usize) -> Option<&A> {
        let at = self.taken.checked_add(ahead)?;
        // SAFETY: `taken <= at < len`: initialized, not taken, not written
        // over (writes stay below byte `taken * size_of::<A>()`).
        (at < self.len).then(|| unsafe { &*self.a_ptr().add(at) })
    }

    /// The `B`s written so far.
    pub fn written(&self) -> &[B] {
        // SAFETY: the first `written` `B`s are initialized; the buffer is
        // aligned for `B` (same alignment as `A`).
        unsafe { std::slice::from_raw_parts(self.b_ptr(), self.written) }
    }

    pub fn written_mut(&mut self) -> &mut [B] {
        // SAFETY: as in `written`, and `&mut self` makes it exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.b_ptr(), self.written) }
    }

    /// Writes `b` after the `B`s written so far. Refused (and `b` given
    /// back) if it would reach into an `A` not yet taken: never more `B`s
    /// than `A`s taken.
    pub fn push(&mut self, b: B) -> Result<(), B> {
        if self.written >= self.taken {
            return Err(b);
        }
        // SAFETY: `written < taken`, and `size_of::<B>() <= size_of::<A>()`,
        // so the new `B` ends at or before byte `taken * size_of::<A>()`:
        // only bytes of `A`s already moved out are overwritten.
        unsafe { ptr::write(self.b_ptr().add(self.written), b) };
        self.written += 1;
        Ok(())
    }

    /// The `B`s as a vector in the same buffer, shrunk to fit. `A`s not
    /// taken are dropped.
    pub fn finish(self) -> Vec<B> {
        let mut this = ManuallyDrop::new(self);
        this.drop_untaken();
        let (written, layout) = (this.written, this.layout());
        let Some(layout) = layout else {
            // Nothing was allocated, so nothing was written either.
            return Vec::new();
        };
        if written == 0 {
            // SAFETY: allocated by the global allocator with this layout.
            unsafe { alloc::dealloc(this.buf.as_ptr(), layout) };
            return Vec::new();
        }
        let size = written * mem::size_of::<B>();
        // SAFETY: `size` is non-zero and no larger than the allocation;
        // the first `written` `B`s are kept by `realloc`.
        let buf = unsafe { alloc::realloc(this.buf.as_ptr(), layout, size) };
        if buf.is_null() {
            let wanted =
                Layout::from_size_align(size, layout.align()).expect("smaller than before");
            alloc::handle_alloc_error(wanted);
        }
        // SAFETY: `buf` was allocated with the alignment of `B` and exactly
        // `written` `B`s of size, all initialized.
        unsafe { Vec::from_raw_parts(buf.cast::<B>(), written, written) }
    }

    /// The layout the buffer was allocated with; `None` if it was not.
    fn layout(&self) -> Option<Layout> {
        if self.cap == 0 || mem::size_of::<A>() == 0 {
            return None;
        }
        Some(Layout::array::<A>(self.cap).expect("the layout of an existing Vec"))
    }

    fn drop_untaken(&mut self) {
        let rest = self.len - self.taken;
        let untaken = ptr::slice_from_raw_parts_mut(
            // SAFETY: `taken <= len`, within the buffer.
            unsafe { self.a_ptr().add(self.taken) },
            rest,
        );
        self.taken = self.len;
        // SAFETY: those `A`s are initialized and owned here; `taken` is
        // moved first so that a panicking drop cannot drop them twice.
        unsafe { ptr::drop_in_place(untaken) };
    }
}

impl<A, B> Drop for Recycle<A, B> {
    fn drop(&mut self) {
        /// Frees the buffer even if dropping an element panics.
        struct Free(Option<(NonNull<u8>, Layout)>);
        impl Drop for Free {
            fn drop(&mut self) {
                if let Some((buf, layout)) = self.0 {
                    // SAFETY: allocated by the global allocator with `layout`.
                    unsafe { alloc::dealloc(buf.as_ptr(), layout) };
                }
            }
        }
        let _free = Free(self.layout().map(|l| (self.buf, l)));
        let written: *mut [B] = self.written_mut();
        self.written = 0;
        // SAFETY: the written `B`s are initialized and owned here.
        unsafe { ptr::drop_in_place(written) };
        self.drop_untaken();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records its drop in a shared log, so every element can be checked to
    /// be dropped exactly once.
    struct Tracked {
        name: String,
        log: Rc<RefCell<Vec<String>>>,
        _pad: [u64; 4],
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.log.borrow_mut().push(self.name.clone());
        }
    }

    /// Smaller than `Tracked`, same alignment.
    struct Small {
        name: String,
        log: Rc<RefCell<Vec<String>>>,
    }

    impl Drop for Small {
        fn drop(&mut self) {
            self.log.borrow_mut().push(format!("small {}", self.name));
        }
    }

    fn tracked(n: usize, log: &Rc<RefCell<Vec<String>>>) -> Vec<Tracked> {
        (0..n)
            .map(|i| Tracked {
                name: format!("a{i}"),
                log: log.clone(),
                _pad: [0; 4],
            })
            .collect()
    }

    fn sorted(log: &Rc<RefCell<Vec<String>>>) -> Vec<String> {
        let mut v = log.borrow().clone();
        v.sort();
        v
    }

    #[test]
    fn writes_over_taken_items_and_keeps_the_rest_readable() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut r: Recycle<Tracked, Small> = Recycle::new(tracked(6, &log));
        assert!(r
            .push(Small {
                name: "early".into(),
                log: log.clone()
            })
            .is_err());
        let mut kept = Vec::new();
        while let Some(a) = r.take() {
            assert_eq!(
                r.peek(0).map(|n| n.name.clone()),
                (r.taken() < 6).then(|| format!("a{}", r.taken()))
            );
            // Every other item becomes a B; earlier Bs stay intact.
            if r.taken() % 2 == 1 {
                let name = a.name.clone();
                assert!(r
                    .push(Small {
                        name,
                        log: log.clone()
                    })
                    .is_ok());
            }
            kept.push(a.name.clone());
            for (i, b) in r.written().iter().enumerate() {
                assert_eq!(b.name, format!("a{}", 2 * i));
            }
        }
        drop(kept);
        let out = r.finish();
        let names: Vec<&str> = out.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["a0", "a2", "a4"]);
        assert_eq!(out.capacity(), 3);
        drop(out);
        let mut expected: Vec<String> = (0..6).map(|i| format!("a{i}")).collect();
        expected.extend(["small a0", "small a2", "small a4", "small early"].map(String::from));
        expected.sort();
        assert_eq!(sorted(&log), expected);
    }

    #[test]
    fn dropped_midway_drops_each_element_once() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut r: Recycle<Tracked, Small> = Recycle::new(tracked(5, &log));
        let a = r.take().unwrap();
        r.push(Small {
            name: "x".into(),
            log: log.clone(),
        })
        .ok()
        .unwrap();
        drop(a);
        let b = r.take().unwrap();
        drop(r);
        assert_eq!(sorted(&log), ["a0", "a2", "a3", "a4", "small x"]);
        drop(b);
        assert_eq!(log.borrow().len(), 6);
    }

    #[test]
    fn finish_drops_what_was_not_taken() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut r: Recycle<Tracked, Small> = Recycle::new(tracked(4, &log));
        drop(r.take());
        let out = r.finish();
        assert!(out.is_empty());
        assert_eq!(sorted(&log), ["a0", "a1", "a2", "a3"]);
    }

    #[test]
    fn empty_and_unallocated_vectors() {
        let r: Recycle<Tracked, Small> = Recycle::new(Vec::new());
        assert!(r.finish().is_empty());
        let mut r: Recycle<Tracked, Small> = Recycle::new(Vec::with_capacity(10));
        assert!(r.take().is_none());
        assert!(r.peek(0).is_none());
        drop(r);
    }

    #[test]
    fn peek_past_the_end_or_overflowing_is_none() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let r: Recycle<Tracked, Small> = Recycle::new(tracked(2, &log));
        assert_eq!(r.peek(1).map(|a| a.name.as_str()), Some("a1"));
        assert!(r.peek(2).is_none());
        assert!(r.peek(usize::MAX).is_none());
    }
}
